-- Turns what the model has streamed so far into panel lines: a structured
-- answer ({"prefix", "imports", "code"} as JSON, complete or cut anywhere)
-- becomes its description and the code as code; any other answer (markdown)
-- is shown as it is.
local M = {}

local escapes = { n = '\n', t = '\t', r = '\r', b = '\b', f = '\f', ['"'] = '"', ['\\'] = '\\', ['/'] = '/' }

-- Decodes the JSON string that starts at text[i] (just after its opening
-- quote) as far as it goes. Returns the text and whether it was closed.
local function partial_string(text, i)
  local out = {}
  local n = #text
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      return table.concat(out), true
    elseif c == '\\' then
      local e = text:sub(i + 1, i + 1)
      if e == '' then
        break
      elseif e == 'u' then
        local hex = text:sub(i + 2, i + 5)
        if #hex < 4 then
          break
        end
        local cp = tonumber(hex, 16) or 63
        -- a surrogate pair: \uD83D\uDE00
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = text:match('^\\u(%x%x%x%x)', i + 6)
          if not lo then
            if #text < i + 11 then
              break
            end
            cp = 0xFFFD
            i = i + 6
          else
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(lo, 16) - 0xDC00)
            i = i + 12
          end
        else
          i = i + 6
        end
        table.insert(out, vim.fn.nr2char(cp))
      else
        table.insert(out, escapes[e] or e)
        i = i + 2
      end
    else
      -- copy a run of plain characters at once
      local j = text:find('["\\]', i) or (n + 1)
      table.insert(out, text:sub(i, j - 1))
      i = j
    end
  end
  return table.concat(out), false
end

--- The field `key` of a JSON object still being streamed: its text so far
--- (nil when it has not started) and whether it is complete.
local function field(text, key)
  local _, e = text:find('"' .. key .. '"%s*:%s*"')
  if not e then
    return nil, false
  end
  return partial_string(text, e + 1)
end

--- Lines showing `text` (the answer streamed so far) for language `lang`.
function M.answer(text, lang)
  local body = text:gsub('^%s+', '')
  if body:sub(1, 1) ~= '{' then
    local lines = vim.split(text, '\n', { plain = true })
    return lines
  end
  local prefix = field(body, 'prefix')
  local imports = field(body, 'imports')
  local code, code_done = field(body, 'code')
  local lines = {}
  if prefix then
    vim.list_extend(lines, vim.split('Description: ' .. prefix, '\n', { plain = true }))
  end
  if (imports and imports ~= '') or code then
    table.insert(lines, '```' .. (lang == 'bash' and 'sh' or lang))
    if imports and imports ~= '' then
      vim.list_extend(lines, vim.split(imports, '\n', { plain = true }))
      table.insert(lines, '')
    end
    if code then
      vim.list_extend(lines, vim.split(code, '\n', { plain = true }))
    end
    table.insert(lines, code_done and '```' or '```  (generating…)')
  end
  if #lines == 0 then
    table.insert(lines, '(generating…)')
  end
  return lines
end

return M
