-- ArgoCD health of a LoadSim: Healthy once the load ran to its end.
-- ArgoCD runs each script alone, so the condition helper is repeated in each.
local function condition(status, type_)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type_ then return c end
  end
  return nil
end

local hs = {status = "Progressing", message = "Waiting for the Phoenix operator"}
local status = obj.status
if status == nil then return hs end

local succeeded = condition(status, "Succeeded")
local ready = condition(status, "Ready")
if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
  hs.message = succeeded.message
elseif succeeded ~= nil and succeeded.status == "False" then
  hs.status = "Degraded"
  hs.message = succeeded.reason .. ": " .. (succeeded.message or "")
elseif ready ~= nil and ready.status == "False" and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = "Invalid spec: " .. (ready.message or "")
elseif ready ~= nil then
  hs.message = ready.message or ready.reason
end
return hs
