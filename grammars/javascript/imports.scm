; Imports of a JavaScript program. Captures read by server/check/imports.c:
;   @import.string  a string literal naming a module
; Captures starting with "_" only feed predicates.

(import_statement
  source: (string) @import.string)

(export_statement
  source: (string) @import.string)

(call_expression
  function: (identifier) @_fn
  arguments: (arguments . (string) @import.string)
  (#eq? @_fn "require"))

(call_expression
  function: (import)
  arguments: (arguments . (string) @import.string))
