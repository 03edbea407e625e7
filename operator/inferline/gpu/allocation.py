"""Which way a pipeline gets its GPUs: the device plugin or Dynamic Resource Allocation.

`place(request, inventory, dra)` follows `placement.gpu.allocation`:
- `devicePlugin`: extended resources (`placement.place`), whatever else the cluster has;
- `dra`: a ResourceClaim per pod (`claims.place`); unplaceable, and why, where the cluster has no
  NVIDIA DRA driver (its DeviceClasses and ResourceSlices);
- `auto` (the default): DRA when the cluster has NVIDIA's DeviceClasses and ResourceSlices, else
  the device plugin. A cluster may run both on different node pools (while moving to DRA):
  there a request DRA cannot host goes to the device plugin when that can host it, and when
  neither can, the reason says why for both.
"""

from __future__ import annotations

from . import claims, placement
from .inventory import Inventory
from .placement import Device, Mode, Placed, Request, Unplaceable
from .slices import CLASSES, DRIVER, DraInventory


def place(request: Request, inventory: Inventory, dra: DraInventory) -> Placed | Unplaceable:
    if request.device is Device.CPU:
        return placement.place(request, inventory)
    mode = request.gpu.allocation
    if mode is Mode.DEVICE_PLUGIN or (mode is Mode.AUTO and not dra.available):
        return placement.place(request, inventory)
    if mode is Mode.DRA and not dra.available:
        return Unplaceable(
            f"allocation dra: the cluster has no NVIDIA DRA driver (DeviceClass "
            f"{' or '.join(CLASSES)} and ResourceSlices of driver {DRIVER}); "
            "use allocation devicePlugin or auto (or the operator runs with --no-dra)"
        )
    by_claim = claims.place(request, dra)
    if isinstance(by_claim, Placed) or mode is Mode.DRA or not inventory.nodes:
        return by_claim
    by_plugin = placement.place(request, inventory)
    if isinstance(by_plugin, Placed):
        return by_plugin
    return Unplaceable(f"DRA: {by_claim.reason}; device plugin: {by_plugin.reason}")
