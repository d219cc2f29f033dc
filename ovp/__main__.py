from ovp.cli import main

main()
