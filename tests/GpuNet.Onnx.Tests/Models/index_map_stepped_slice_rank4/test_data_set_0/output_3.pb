B
avg_pooledJTë<¼Q¾Ý-W¿®Ä?„À0>¯²Z?