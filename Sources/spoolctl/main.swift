import Spool
print("spoolctl")
