from lockstock.cli import main

main()
