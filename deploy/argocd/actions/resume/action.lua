-- Files the request `modeldeploy resume` files: modeldeploy.io/request: resume@<RFC 3339 UTC time>.
local os = require("os")
obj.metadata.annotations = obj.metadata.annotations or {}
obj.metadata.annotations["modeldeploy.io/request"] = "resume@" .. os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
