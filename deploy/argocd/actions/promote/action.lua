-- Files the request `modeldeploy promote` files: modeldeploy.io/request: promote@<RFC 3339 UTC time>.
local os = require("os")
obj.metadata.annotations = obj.metadata.annotations or {}
obj.metadata.annotations["modeldeploy.io/request"] = "promote@" .. os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
