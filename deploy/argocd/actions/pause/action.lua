-- Files the request `modeldeploy pause` files: modeldeploy.io/request: pause@<RFC 3339 UTC time>.
local os = require("os")
obj.metadata.annotations = obj.metadata.annotations or {}
obj.metadata.annotations["modeldeploy.io/request"] = "pause@" .. os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
