"""One reconcile step per kind, written once against a Store, a Runtime and a measurement provider.

Every driver runs these: the operator's kopf handlers (objects in the API
server, either runtime) and `phoenix run --local` (objects in memory, local
processes). A driver only decides when a step runs and how its result is
written back.
"""
