-- Argo CD health of a modeldeploy.io ModelDeployment. It reads the conditions kstatus reads
-- (Flux, kubectl wait) in the same order, so that both tools give the same verdict:
-- Progressing = InProgress, Degraded = Failed, Healthy or Suspended = Current (docs/gitops.md).
local hs = {}

local function condition(conditionType)
  if obj.status.conditions == nil then
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

-- Conditions about another generation say nothing about the current spec.
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition("Stalled")
local reconciling = condition("Reconciling")
local ready = condition("Ready")

-- The operator cannot go on without a change by someone.
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = messageOf("Stalled: " .. tostring(stalled.reason), stalled)
  return hs
end

if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = messageOf("Reconciling: " .. tostring(reconciling.reason), reconciling)
  return hs
end

-- A paused canary, as Argo CD shows a paused Argo Rollout, while its stable revision serves;
-- a paused canary whose stable revision is not ready is still waiting (kstatus: InProgress).
if obj.status.phase == "Paused" and isTrue(ready) then
  hs.status = "Suspended"
  hs.message = messageOf("Paused", reconciling, condition("Progressing"))
  return hs
end

-- The desired state is reached: this includes a manual canary held at its weight.
if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = messageOf("Ready", ready)
  return hs
end

hs.status = "Progressing"
hs.message = messageOf("Waiting for the operator to report Ready", ready)
return hs
