from qadmin.cli import main

main()
