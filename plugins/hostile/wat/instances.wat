;; A hostile test guest: a mutator with eight more core instances, each with a memory of
;; 12.5 MiB (200 pages of 64 KiB) — each under a 16 MiB limit, 100 MiB together. Assembled into
;; shell.wat by the tests.
;; @component
(core module $hog (memory 200))
(core instance (instantiate $hog))
(core instance (instantiate $hog))
(core instance (instantiate $hog))
(core instance (instantiate $hog))
(core instance (instantiate $hog))
(core instance (instantiate $hog))
(core instance (instantiate $hog))
(core instance (instantiate $hog))
