-- Argo CD resource actions of a modeldeploy.io ModelDeployment: each files the request that
-- `modeldeploy promote|abort|pause|resume` files. An action is offered only where the operator
-- would act on it (rollout/machine.py ignores the rest): every one needs a canary in flight;
-- promote needs one not already promoting, pause one progressing, resume one paused.
local phase = nil
local canary = nil
if obj.status ~= nil then
  phase = obj.status.phase
  canary = obj.status.canaryRevision
end
local inFlight = canary ~= nil and (phase == "Progressing" or phase == "Paused" or phase == "Promoting")

local actions = {}
actions["promote"] = {["disabled"] = not inFlight or phase == "Promoting"}
actions["abort"] = {["disabled"] = not inFlight}
actions["pause"] = {["disabled"] = not inFlight or phase ~= "Progressing"}
actions["resume"] = {["disabled"] = not inFlight or phase ~= "Paused"}
return actions
