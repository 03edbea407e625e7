"""A real Kubernetes control plane (etcd, apiserver, controllers, scheduler, kwok) for e2e tests."""
