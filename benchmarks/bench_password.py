"""Password policy and argon2id hashing: medians in ms, ops/s and ratios.

Run with ``nox -s bench`` (or ``python benchmarks/bench_password.py``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from _timing import median_ms, mode_line, ops_per_second, scaled

from securepractice import HashParameters, PasswordHasher, PasswordPolicy

#: Samples of each argon2 figure, and of each history check.
HASHES = scaled(15, 3)
HISTORIES = scaled(7, 2)


def hashing(name: str, parameters: HashParameters) -> float:
    hasher = PasswordHasher(parameters)
    stored = hasher.hash("Sunshine-2026")
    hash_ms = median_ms(lambda: hasher.hash("Sunshine-2026"), HASHES)
    verify_ms = median_ms(lambda: hasher.verify(stored, "Sunshine-2026"), HASHES)
    print(f"{name}: hash median {hash_ms:.1f} ms, verify median {verify_ms:.1f} ms")
    return verify_ms


def history(name: str, parameters: HashParameters, verify_ms: float) -> None:
    hasher = PasswordHasher(parameters)
    stored = tuple(hasher.hash(f"Old-password-{i}!") for i in range(6))
    policy = PasswordPolicy()
    sequential = median_ms(
        lambda: any(hasher.verify(h, "Brand-new-2026!") for h in stored), HISTORIES
    )
    chosen = median_ms(
        lambda: policy.check("Brand-new-2026!", history=stored, hasher=hasher), HISTORIES
    )
    with ThreadPoolExecutor(max_workers=6) as pool:
        six = median_ms(
            lambda: any(pool.map(lambda h: hasher.verify(h, "Brand-new-2026!"), stored)),
            HISTORIES,
        )
    print(
        f"{name}: 6-deep history check: sequential {sequential:.1f} ms"
        f" ({sequential / verify_ms:.1f}x one verify); the library's choice"
        f" {chosen:.1f} ms ({chosen / verify_ms:.1f}x); a 6-thread pool"
        f" {six:.1f} ms ({six / verify_ms:.1f}x)"
    )


def main() -> None:
    print(f"password policy and argon2id; {mode_line()}")
    policy = PasswordPolicy()
    good = policy.check("Sunshine-2026", "Sunshine-2026")
    assert good.ok
    rate = ops_per_second(
        lambda: policy.check("Sunshine-2026", "Sunshine-2026"), scaled(100, 20) / 100
    )
    print(f"policy check without hashing: {rate:,.0f} ops/s")
    huge = "A" * 10_000_000
    print(f"10 MB password refused in {median_ms(lambda: policy.check(huge), 20):.3f} ms")
    default_verify = hashing("RFC 9106 low-memory (t=3, m=64 MiB, p=4)", HashParameters())
    owasp_verify = hashing("OWASP (t=2, m=19 MiB, p=1)", HashParameters.OWASP)
    history("RFC 9106 low-memory", HashParameters(), default_verify)
    history("OWASP", HashParameters.OWASP, owasp_verify)


if __name__ == "__main__":
    main()
