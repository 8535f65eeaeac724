#!/bin/sh
# Writes the seed corpus of fuzz_protocol into directory $1: framed messages
# (single, batches, notifications, responses, bad headers) and bare bodies.
set -eu
out=$1
mkdir -p "$out"
export LC_ALL=C # ${#var} must count bytes

frame() { printf 'Content-Length: %d\r\n\r\n%s' "${#1}" "$1"; }

seed() { cat > "$out/seed-$1"; }

frame '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}' | seed 01
frame '{"jsonrpc":"2.0","method":"initialized","params":{}}' | seed 02
frame "$(printf '{"jsonrpc":"2.0","id":"a","method":"crucible/ask","params":{"question":"caf\303\251 \360\235\204\236"}}')" | seed 03
frame '[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method":"notify_hello","params":[7]},{"foo":"boo"}]' | seed 04
frame '[1,2,3]' | seed 05
frame '[]' | seed 06
frame '{"jsonrpc":"2.0","id":7,"result":null}' | seed 07
frame '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error","data":[1]}}' | seed 08
frame '{"jsonrpc":"2.0","method":"m","id":9007199254740992,"params":[[[[{"a":"\ud83d\ude00"}]]]]}' | seed 09
frame '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]' | seed 10
{ frame '{"jsonrpc":"2.0","id":2,"method":"shutdown","params":null}'; frame '{"jsonrpc":"2.0","method":"exit"}'; } | seed 11
printf 'Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length: 2\r\n\r\n{}' | seed 12
printf 'Content-Length: 2\n\n{}\r\n' | seed 13
printf 'Content-Length: -1\r\n\r\n' | seed 14
printf 'Content-Length: 99999999999\r\n\r\n' | seed 15
printf 'Content-Type: text/plain; charset=latin1\r\nContent-Length: 2\r\n\r\n{}' | seed 16
printf '{"jsonrpc":"2.0","method":"bare","params":{"k":[true,false,null,-1.5e3]}}' | seed 17
