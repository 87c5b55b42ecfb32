-- Files the request `modeldeploy abort` files: modeldeploy.io/request: abort@<RFC 3339 UTC time>.
local os = require("os")
obj.metadata.annotations = obj.metadata.annotations or {}
obj.metadata.annotations["modeldeploy.io/request"] = "abort@" .. os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
