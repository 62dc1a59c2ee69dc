"""Download benchmark for ``startrack fetch`` (issue 12), against plain requests in the same run.

A fake SAS (tests/fake_sdss.py, the same server the tests use) runs in its own process on
127.0.0.1 and serves N spec-lite files (the real spec-2942-54521-0124, 176 kB, from
../shared/sdss when present, else a simulated one) under the real layout. Measured:

1. files/s of the Downloader (temp file, Content-Length + FITS/COADD verification, rename,
   retrying session) with 1, 4 and 16 workers, no rate cap;
2. the naive baseline: a plain sequential ``requests.get(url).content`` written to disk;
3. the polite default (4 workers, 5 requests/s) on a slice, to show the cap holds;

and prints how long the seed's real 25,000 spectra take at the polite rate.

Usage: python benchmarks/bench_fetch.py [--files 2000] [--workdir bench-data/fetch]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import time
from pathlib import Path

import requests
from machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
REAL = ROOT.parent / "shared" / "sdss" / "spectra" / "spec-2942-54521-0124.fits"
SEED_SPECTRA = 25_000


def _serve(file: str, paths: list[str], queue: mp.Queue, stop: mp.Event) -> None:
    from fake_sdss import FakeSAS

    with FakeSAS() as sas:
        for p in paths:
            sas.serve(p, Path(file))
        queue.put(sas.url)
        stop.wait()


def _jobs(n: int, sas_url: str):
    from startrack.etl.fetch.download import Job
    from startrack.sdss_urls import sas_spec_lite_path, sas_spec_lite_url, spec_name

    specs = [(300 + i // 640, 51600 + i // 640, 1 + i % 640) for i in range(n)]
    paths = [sas_spec_lite_path(p, m, f, "26", 17) for p, m, f in specs]
    jobs = [Job(spec_name(p, m, f), sas_spec_lite_url(p, m, f, "26", 17, sas_url))
            for p, m, f in specs]  # fmt: skip
    return paths, jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--polite-files", type=int, default=60)
    ap.add_argument("--workdir", type=Path, default=Path("bench-data/fetch"))
    args = ap.parse_args()

    from startrack.etl.fetch.download import Downloader
    from startrack.etl.fetch.session import make_session

    print(describe_machine())
    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if REAL.exists():
        source = REAL
    else:
        from fits_factory import write_spec

        source = write_spec(work / "spec-0300-51600-0001.fits", npix=3850)
    size = source.stat().st_size
    paths, _ = _jobs(args.files, "")
    queue: mp.Queue = mp.Queue()
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(str(source), paths, queue, stop), daemon=True)
    server.start()
    try:
        sas_url = queue.get(timeout=60)
        _, jobs = _jobs(args.files, sas_url)
        results: dict[str, dict] = {}

        # the naive baseline: sequential requests.get, no temp file, no verification
        dest = work / "plain"
        dest.mkdir()
        t0 = time.perf_counter()
        for j in jobs:
            r = requests.get(j.url, timeout=60)
            r.raise_for_status()
            (dest / j.name).write_bytes(r.content)
        secs = time.perf_counter() - t0
        results["plain requests.get, sequential"] = {"seconds": secs, "files_s": len(jobs) / secs}

        for workers in (1, 4, 16):
            dest = work / f"w{workers}"
            session = make_session(pool=workers + 2)
            dl = Downloader(session, dest, rate=0)
            t0 = time.perf_counter()
            outcomes = dl.run(jobs, workers=workers)
            secs = time.perf_counter() - t0
            assert all(o.status == "got" for o in outcomes), {o.status for o in outcomes}
            results[f"startrack fetch, {workers} workers"] = {
                "seconds": secs,
                "files_s": len(jobs) / secs,
            }

        dest = work / "polite"
        dl = Downloader(make_session(pool=6), dest, rate=5.0)
        polite = jobs[: args.polite_files]
        t0 = time.perf_counter()
        dl.run(polite, workers=4)
        secs = time.perf_counter() - t0
        results["startrack fetch defaults (4 workers, 5 req/s)"] = {
            "seconds": secs,
            "files_s": len(polite) / secs,
        }
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()

    base = results["plain requests.get, sequential"]["files_s"]
    print(f"\n{args.files} spec-lite files of {size / 1e3:.0f} kB from a loopback SAS:")
    for name, r in results.items():
        print(
            f"  {name:48s} {r['files_s']:7.1f} files/s  ({r['seconds']:.1f} s, "
            f"{r['files_s'] / base:.2f}x plain)"
        )
    polite_rate = results["startrack fetch defaults (4 workers, 5 req/s)"]["files_s"]
    hours = SEED_SPECTRA / 5.0 / 3600
    print(
        f"\nestimate: the seed's {SEED_SPECTRA:,} spectra at the polite 5 requests/s: "
        f"{SEED_SPECTRA / 5.0:,.0f} s = {hours:.1f} h (measured cap here: {polite_rate:.2f} "
        f"files/s), {SEED_SPECTRA * size / 1e9:.1f} GB at {size / 1e3:.0f} kB a file "
        f"({5 * size / 1e6:.1f} MB/s needed)"
    )
    (work / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
