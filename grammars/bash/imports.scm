; Commands a Bash script invokes and files it sources. Captures read by
; server/check/imports.c:
;   @import.command     a command name that is a plain word
;   @import.source      the file argument of `source FILE` / `. FILE`
;   @definition.function  a function the script defines (resolves commands)
; Captures starting with "_" only feed predicates.

(command
  name: (command_name (word) @import.command))

(command
  name: (command_name (word) @_cmd)
  .
  argument: (_) @import.source
  (#any-of? @_cmd "source" "."))

(function_definition
  name: (word) @definition.function)
