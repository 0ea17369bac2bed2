from simbaflow.cli import main

main()
