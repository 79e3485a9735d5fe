from drem import create_app

app = create_app()
