<?php
echo "Hello from corral/php\n";
