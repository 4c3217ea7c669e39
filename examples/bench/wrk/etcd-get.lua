-- etcd 3.4: POST /v3/kv/range over the first 1,000 keys; a range is
-- linearizable unless "serializable" is set.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local c = require("common")
setup = c.setup
local bodies = {}
init = function()
    c.init()
    for n = 0, 999 do
        bodies[n] = string.format('{"key":"%s"}', c.base64("k" .. n))
    end
end
request = function()
    return wrk.format("POST", "/v3/kv/range", nil, bodies[math.random(0, 999)])
end
