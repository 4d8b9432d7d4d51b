"""kopf registrations: each handler parses the body, calls a pure reconcile
function, writes the status patch and maps failures to kopf's retry errors."""
