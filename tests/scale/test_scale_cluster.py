"""``cluster_client``: the workers of a ``local:N`` cluster run with the lean settings."""

from __future__ import annotations

import pytest

from gridmap.errors import InputError

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def test_local_workers_run_without_the_profiler():
    import dask

    from gridmap.scale.cluster import LEAN_WORKER_CONFIG, cluster_client

    def settings() -> dict[str, object]:
        import dask

        return {k: dask.config.get(k) for k in LEAN_WORKER_CONFIG}

    before = settings()
    with cluster_client("local:1") as client:
        got = list(client.run(settings).values())
    assert got == [LEAN_WORKER_CONFIG]
    # only the cluster's processes: this one keeps its own settings
    assert settings() == before and dask.config.get("distributed.worker.profile.enabled")


@pytest.mark.parametrize("bad", ["local:0", "local:two", "10.0.0.5:8786"])
def test_a_bad_scheduler_is_refused_before_anything_starts(bad):
    from gridmap.scale.cluster import cluster_client

    with pytest.raises(InputError, match="local:2|tcp://"), cluster_client(bad):
        pass
