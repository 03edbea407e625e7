"""The e2e pod runner: a stand-in kubelet that runs Inferline runtime pods as real processes.

kwok plays the fake nodes and drives every other pod's status; pods whose containers use an
Inferline runtime image (images.py) are left to this runner, which runs them on this machine
with a loopback-routed pod IP (e2e/podnet.py). See e2e/README.md ("The data plane").
"""
