"""The desk (filled by the desk issue): end-to-end dry-run simulator, testnet limits, usage store,
profiles, orchestrator and Prometheus textfile metrics, built on :mod:`engine.execution`."""
