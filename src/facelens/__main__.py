from facelens.entrypoints.cli.main import main

main()
