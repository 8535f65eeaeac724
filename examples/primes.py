# A small program to try the sandbox with: crucible run examples/primes.py
def primes(n):
    sieve = [True] * (n + 1)
    sieve[0:2] = [False, False]
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = [False] * len(sieve[i * i::i])
    return [i for i, p in enumerate(sieve) if p]


if __name__ == "__main__":
    ps = primes(100)
    print(f"{len(ps)} primes below 100: {ps}")
