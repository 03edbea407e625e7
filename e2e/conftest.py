"""Make the e2e fixtures (e2e/plugin.py) available to the tests in this directory."""

from e2e.plugin import (  # noqa: F401
    _operator_watches_current_crds,
    cluster,
    crds,
    e2e_bin_dir,
    k8s_client,
    kubeconfig,
    kubectl,
    kwok_backend,
    namespace,
    operator,
    pytest_collection_finish,
    pytest_runtest_makereport,
)
