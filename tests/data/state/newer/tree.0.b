omadm-tree-bucket 0 1
0	.	I	-	-	Add=*&Delete=*&Exec=*&Get=*&Replace=*	-	1796669540	0	-
