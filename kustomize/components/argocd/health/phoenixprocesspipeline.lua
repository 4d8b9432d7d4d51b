-- ArgoCD health of a PhoenixProcessPipeline: a valid config whose collectors are ready.
-- ArgoCD runs each script alone, so the condition helper is repeated in each.
local function condition(status, type_)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type_ then return c end
  end
  return nil
end

local hs = {status = "Progressing", message = "Waiting for the Phoenix operator"}
local status = obj.status
if status == nil or status.observedGeneration == nil
    or status.observedGeneration < (obj.metadata.generation or 0) then
  return hs
end

local valid = condition(status, "ConfigValid")
if valid ~= nil and valid.status == "False" then
  hs.status = "Degraded"
  hs.message = "Invalid config: " .. (valid.message or "")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
end
if ready ~= nil then hs.message = ready.message or ready.reason end
return hs
