-- ArgoCD health of a PhoenixExperiment: its phase, and why it is not progressing.
-- ArgoCD runs each script alone, so the condition helper is repeated in each.
local function condition(status, type_)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type_ then return c end
  end
  return nil
end

local hs = {status = "Progressing", message = "Waiting for the Phoenix operator"}
local status = obj.status
if status == nil or status.phase == nil then return hs end

-- SpecAccepted=False: Git holds a spec the operator refuses (invalid, or edited while running);
-- Promoted=False: the verdict was Promote, but the auto-promotion could not change the target
for _, type_ in ipairs({"SpecAccepted", "Promoted"}) do
  local refused = condition(status, type_)
  if refused ~= nil and refused.status == "False" then
    hs.status = "Degraded"
    hs.message = refused.reason .. ": " .. (refused.message or "")
    return hs
  end
end

-- Drifted=True: the promoted pipeline no longer behaves as the experiment measured
local drifted = condition(status, "Drifted")
if drifted ~= nil and drifted.status == "True" then
  hs.status = "Degraded"
  hs.message = "Drifted: " .. (drifted.message or "")
  return hs
end

local succeeded = condition(status, "Succeeded")
local detail = succeeded and succeeded.message or ""
if status.phase == "Completed" then
  hs.status = "Healthy"
  local decision = status.verdict and status.verdict.decision or "no verdict"
  hs.message = "Completed: " .. decision
  if status.verdict and status.verdict.reasons and status.verdict.reasons[1] then
    hs.message = hs.message .. "; " .. status.verdict.reasons[1]
  end
elseif status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Failed: " .. (succeeded and succeeded.reason or "") .. ": " .. detail
elseif status.phase == "Aborted" then
  hs.status = "Suspended"
  hs.message = "Aborted: " .. detail
else
  hs.message = status.phase .. ": " .. detail
end
return hs
