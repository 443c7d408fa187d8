"""`python -m innerloop` (and the `innerloop` command, through `main`)."""

import gc


def main() -> int:
    # A start allocates much and frees little: no cyclic collections until it is done
    # (~6% of its CPU); `cli.main` turns them back on (`collect_again`).
    gc.disable()
    from innerloop.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
