-- Argo CD health check for inferline.dev/InferencePipeline (argocd-cm key
-- resource.customizations.health.inferline.dev_InferencePipeline; docs/gitops.md).
--
-- Argo CD does not read kstatus conditions of custom resources: this maps the operator's
-- status onto Argo CD's health. A status written for an older generation says nothing about the
-- current spec (Progressing); Stalled (the spec cannot be served as it is) and Degraded (a
-- replica keeps failing) are Degraded; Ready is Healthy; anything else is on its way.
local hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Inferline operator to observe the pipeline"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Inferline operator to observe generation " .. generation ..
    " (status is for generation " .. status.observedGeneration .. ")"
  return hs
end

local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "The pipeline cannot be served as specified")
  return hs
end

local degraded = condition(status.conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = text(degraded, "A replica of the pipeline is failing")
  return hs
end

local ready = condition(status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Serving")
  return hs
end

hs.status = "Progressing"
hs.message = text(ready, "Waiting for the pipeline to become Ready")
return hs
