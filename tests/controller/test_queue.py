"""The work queue: deduplicated, one worker per key, delayed retries with backoff."""

from __future__ import annotations

import asyncio

from inferline.controller.queue import Backoff, WorkQueue, run_workers


def test_a_key_added_twice_is_worked_once() -> None:
    async def go() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        seen: list[str] = []
        q.add("a")
        q.add("a")
        q.add("b")

        async def work(k: str) -> None:
            seen.append(k)

        task = asyncio.create_task(run_workers(q, work, 2))
        await asyncio.sleep(0.05)
        task.cancel()
        return seen

    assert sorted(asyncio.run(go())) == ["a", "b"]


def test_a_key_added_while_worked_runs_again_after_never_concurrently() -> None:
    async def go() -> tuple[int, int]:
        q: WorkQueue[str] = WorkQueue()
        running = 0
        most = 0
        runs = 0

        async def work(k: str) -> None:
            nonlocal running, most, runs
            running += 1
            most = max(most, running)
            runs += 1
            if runs == 1:
                q.add("a")  # a change arrives while we work on "a"
            await asyncio.sleep(0.02)
            running -= 1

        q.add("a")
        task = asyncio.create_task(run_workers(q, work, 4))
        await asyncio.sleep(0.2)
        task.cancel()
        return runs, most

    assert asyncio.run(go()) == (2, 1)


def test_delayed_keys_wait_and_an_earlier_add_wins() -> None:
    async def go() -> list[tuple[str, float]]:
        q: WorkQueue[str] = WorkQueue()
        loop = asyncio.get_running_loop()
        start = loop.time()
        seen: list[tuple[str, float]] = []
        q.add("late", 0.2)
        q.add("soon", 0.5)
        q.add("soon", 0.05)  # earlier: replaces the later due time

        async def work(k: str) -> None:
            seen.append((k, loop.time() - start))

        task = asyncio.create_task(run_workers(q, work, 1))
        await asyncio.sleep(0.35)
        task.cancel()
        return seen

    seen = asyncio.run(go())
    assert [k for k, _ in seen] == ["soon", "late"]
    assert 0.04 <= seen[0][1] < 0.15 and 0.19 <= seen[1][1] < 0.3


def test_backoff_doubles_up_to_a_cap_and_is_forgotten() -> None:
    b = Backoff(base_s=1, cap_s=5)
    assert [b.next_delay("k") for _ in range(5)] == [1, 2, 4, 5, 5]
    b.forget("k")
    assert b.next_delay("k") == 1


def _order(
    adds: list[tuple[str, bool]], *, during: list[tuple[str, bool]] | None = None
) -> list[str]:
    """The order one worker takes keys in, after `adds` (key, urgent); `during` is added while
    the first key is worked."""

    async def go() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        seen: list[str] = []
        for k, urgent in adds:
            q.add(k, urgent=urgent)

        async def work(k: str) -> None:
            if not seen:
                for k2, urgent in during or []:
                    q.add(k2, urgent=urgent)
            seen.append(k)

        task = asyncio.create_task(run_workers(q, work, 1))
        await asyncio.sleep(0.05)
        task.cancel()
        return seen

    return asyncio.run(go())


def test_urgent_keys_go_before_refreshes_added_earlier() -> None:
    assert _order([("old-1", False), ("new", True), ("old-2", False)]) == ["new", "old-1", "old-2"]


def test_a_refresh_that_becomes_urgent_moves_up_and_runs_once() -> None:
    assert _order([("a", False), ("b", False), ("b", True)]) == ["b", "a"]
    # urgent, then a refresh of the same key: it stays urgent
    assert _order([("a", False), ("b", True), ("b", False)]) == ["b", "a"]


def test_urgency_added_while_a_key_is_worked_holds_for_its_next_run() -> None:
    # "a" is worked; meanwhile "b" (refresh) and "a" again (urgent) are added: "a" goes first.
    assert _order([("a", False)], during=[("b", False), ("a", True)]) == ["a", "a", "b"]


def test_an_urgent_key_not_yet_due_does_not_hold_up_a_due_refresh() -> None:
    async def go() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        seen: list[str] = []
        q.add("later", 0.1, urgent=True)
        q.add("now")

        async def work(k: str) -> None:
            seen.append(k)

        task = asyncio.create_task(run_workers(q, work, 1))
        await asyncio.sleep(0.2)
        task.cancel()
        return seen

    assert asyncio.run(go()) == ["now", "later"]
