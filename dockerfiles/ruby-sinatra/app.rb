require 'sinatra'

get '/' do
  "Hello from corral/ruby-sinatra\n"
end
