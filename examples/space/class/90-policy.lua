-- Database servers stay headless even when a card is in the box: the GPU
-- stack only adds risk there.
if has("DB") and has("GPU") then remove("GPU") end
