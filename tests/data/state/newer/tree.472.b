omadm-tree-bucket 472 1
19	./Vendor/Acme	I	-	-	-	-	1796669540	0	-
