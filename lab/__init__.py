"""The lab launcher, topology and CLI; lab.kit is the layer every service imports."""
