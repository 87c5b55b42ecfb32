-- Argo CD health of a modeldeploy.io ModelDeployment, from its kstatus-style status.
-- Order matters: conditions about an older generation say nothing about the current
-- spec, so staleness is checked first; a failed rollout outranks one in progress.
local hs = {}

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- The first non-empty message among the conditions, else the fallback. Absent conditions
-- are nil arguments, which ipairs would stop at, hence select.
local function messageOf(fallback, ...)
  for i = 1, select("#", ...) do
    local c = select(i, ...)
    if c ~= nil and c.message ~= nil and c.message ~= "" then
      return c.message
    end
  end
  return fallback
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
local phase = obj.status.phase
local ready = condition("Ready")
local progressing = condition("Progressing")
local degraded = condition("Degraded")

if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

if isTrue(degraded) or phase == "RolledBack" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = messageOf("Phase " .. tostring(phase), degraded, ready)
  return hs
end

if isTrue(progressing) or phase == "Progressing" or phase == "Promoting" or phase == "Paused" then
  hs.status = "Progressing"
  hs.message = messageOf("Phase " .. tostring(phase), progressing, ready)
  return hs
end

if isTrue(ready) and phase == "Stable" then
  hs.status = "Healthy"
  hs.message = messageOf("Serving the stable revision", ready)
  return hs
end

hs.status = "Progressing"
hs.message = messageOf("Waiting for the model to become ready", ready)
return hs
