from modelatlas.cli.main import main

main()
