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
