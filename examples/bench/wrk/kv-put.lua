-- raft-kv: PUT /kv/<key> with a 100-byte body.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local c = require("common")
setup = c.setup
init = c.init
request = function()
    return wrk.format("PUT", "/kv/" .. c.key(), nil, c.value)
end
