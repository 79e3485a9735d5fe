from car_client.cli import main

main()
