;; The shell of the hostile guests written in the component model's text format: a mutator
;; (kpo:plugin/mutator@0.1.0) whose `mutate` answers err(""). Each guest (*.wat beside this
;; file) fills in its sections — `;; @module` (more of the main core module), `;; @mutate` (what
;; `mutate` does first), `;; @component` (more of the component) — and the tests assemble the
;; result with the `wat` crate into a real component. See ../README.md.
(component
  (core module $main
    (memory (export "memory") 1)
    ;; @module
    ;; Every string kpo hands over lands at 1024 (the guest never reads them).
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (i32.const 1024))
    ;; mutate(pod, context) -> result<string, string>: err(""), written at 16.
    (func (export "mutate")
      (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      ;; @mutate
      (i32.store (i32.const 16) (i32.const 1))
      (i32.store (i32.const 20) (i32.const 32))
      (i32.store (i32.const 24) (i32.const 0))
      (i32.const 16)))
  (core instance $core (instantiate $main))
  ;; @component

  ;; The interface, re-exported through a small component so that its types have names, as
  ;; wit-component lays it out.
  (type $context (record
    (field "task" string) (field "namespace" string) (field "run-id" string)
    (field "attempt" u32) (field "config" string)))
  (type $mutate-type (func (param "pod" string) (param "context" $context)
    (result (result string (error string)))))
  (func $mutate (type $mutate-type)
    (canon lift (core func $core "mutate") (memory (core memory $core "memory"))
      (realloc (core func $core "realloc"))))
  (component $interface
    (type $context (record
      (field "task" string) (field "namespace" string) (field "run-id" string)
      (field "attempt" u32) (field "config" string)))
    (import "import-type-context" (type $imported (eq $context)))
    (type $mutate-type (func (param "pod" string) (param "context" $imported)
      (result (result string (error string)))))
    (import "import-func-mutate" (func $mutate (type $mutate-type)))
    (export $exported "context" (type $imported))
    (type $exported-type (func (param "pod" string) (param "context" $exported)
      (result (result string (error string)))))
    (export "mutate" (func $mutate) (func (type $exported-type))))
  (instance $mutator (instantiate $interface
    (with "import-func-mutate" (func $mutate))
    (with "import-type-context" (type $context))))
  (export "kpo:plugin/mutator@0.1.0" (instance $mutator)))
