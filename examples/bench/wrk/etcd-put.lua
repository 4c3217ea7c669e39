-- etcd 3.4 through its HTTP/JSON gateway: POST /v3/kv/put, the same keys and
-- 100-byte values as kv-put.lua (bodies built once per thread).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local c = require("common")
setup = c.setup
local bodies = {}
init = function()
    c.init()
    local value = c.base64(c.value)
    for n = 0, c.keys - 1 do
        bodies[n] = string.format('{"key":"%s","value":"%s"}', c.base64("k" .. n), value)
    end
end
request = function()
    return wrk.format("POST", "/v3/kv/put", nil, bodies[math.random(0, c.keys - 1)])
end
