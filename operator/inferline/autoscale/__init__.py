"""The built-in autoscaler: read the runtime's metrics (metrics, sources, triton_metrics),
decide the replicas (decide, pure) and describe the decisions on /metrics (export)."""
