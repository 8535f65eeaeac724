; Imports of a Python program. Captures read by server/check/imports.c:
;   @import.module    a dotted module name (absolute import)
;   @import.relative  a relative module reference (from . import x, from ..a import b)
;   @import.string    a string literal naming a module (__import__, importlib.import_module)
; Captures starting with "_" only feed predicates.

(import_statement
  name: (dotted_name) @import.module)

(import_statement
  name: (aliased_import
    name: (dotted_name) @import.module))

(import_from_statement
  module_name: (dotted_name) @import.module)

(import_from_statement
  module_name: (relative_import) @import.relative)

(call
  function: (identifier) @_fn
  arguments: (argument_list . (string) @import.string)
  (#eq? @_fn "__import__"))

(call
  function: (attribute
    object: (identifier) @_obj
    attribute: (identifier) @_fn)
  arguments: (argument_list . (string) @import.string)
  (#eq? @_obj "importlib")
  (#eq? @_fn "import_module"))

(call
  function: (identifier) @_fn
  arguments: (argument_list . (string) @import.string)
  (#eq? @_fn "import_module"))
