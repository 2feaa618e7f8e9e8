omadm-tree-bucket 462 1
20	./Vendor/Acme/Greeting	L	chr	-	-	-	1796669540	2	d3JpdHRlbiBieSBhIGxhdGVyIGRtY2xpZW50
