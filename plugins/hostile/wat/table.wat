;; A hostile test guest: a mutator that grows a table by 2^28 elements — 2 GiB of function
;; references — in one instruction. Assembled into shell.wat by the tests.
;; @module
(table $table 1 funcref)
;; @mutate
(drop (table.grow $table (ref.null func) (i32.const 0x10000000)))
