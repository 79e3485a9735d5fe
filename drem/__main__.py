from drem.cli import main

main()
