import CNNCDriver
print("cnnc")
